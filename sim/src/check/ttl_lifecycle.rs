//! `ttl_lifecycle`: from the Redis node's own history, every processing record is written with
//! the processing TTL and every completed record with its event type's TTL from the config
//! table; at the end, no completed record lacks an expiry. (When the records then expire is the
//! Redis model's business, held to real Redis by the differential test; the remaining TTL at
//! the end is not judged, since a corrected Redis clock legitimately moves it.)

use super::{Input, Severity, Violation};
use crate::trace::Event;
use std::collections::BTreeMap;

/// `event_type` with `.` → `_` (as in the key) → its completed TTL in seconds.
fn ttl_by_key_type() -> (BTreeMap<String, u64>, u64) {
    let lib = idempotency::Config::new("sim_worker");
    (
        lib.ttl_by_event_type_s
            .iter()
            .map(|(t, s)| (t.replace('.', "_"), *s))
            .collect(),
        lib.default_ttl_s,
    )
}

fn key_type(key: &str) -> &str {
    key.rsplit(':').nth(1).unwrap_or("")
}

fn arg_u64(e: &Event, i: usize) -> Option<u64> {
    e.fields.get("args")?.as_array()?.get(i)?.as_u64()
}

fn arg_str(e: &Event, i: usize) -> Option<&str> {
    e.fields.get("args")?.as_array()?.get(i)?.as_str()
}

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let (table, default_s) = ttl_by_key_type();
    let ttl_for = |key: &str| table.get(key_type(key)).copied().unwrap_or(default_s);
    let processing_s = input.config.processing_ttl_s;
    let mut out = Vec::new();
    let mut bad = |i: usize, e: &Event, detail: String| {
        out.push(Violation {
            kind: "ttl_lifecycle",
            severity: Severity::Correctness,
            event_id: e
                .str("key")
                .map(|k| k.rsplit(':').next().unwrap_or("").chars().take(8).collect())
                .unwrap_or_default(),
            detail,
            first_event: Some(i),
        })
    };
    for (i, e) in input.trace.iter().enumerate().filter(|(_, e)| e.kind == "redis") {
        let key = e.str("key").unwrap_or("");
        let reply = e.str("reply").unwrap_or("");
        let processing = arg_str(e, 0).is_some_and(|v| v.contains("\"processing\""));
        let (written, want): (Option<u64>, u64) = match e.str("cmd") {
            // v2's lock: SET key <processing> NX EX <ttl>.
            Some("SET") if reply == "OK" && processing => (arg_u64(e, 3), processing_s),
            Some("SETEX") if reply == "OK" => (arg_u64(e, 0), ttl_for(key)),
            Some("EVALSHA:acquire") if reply.starts_with("[\"acquired\"") => {
                (arg_u64(e, 1).map(|ms| ms / 1000), processing_s)
            }
            Some("EVALSHA:confirm") if reply == "1" || reply == "2" => (arg_u64(e, 2), ttl_for(key)),
            _ => continue,
        };
        if written != Some(want) {
            let what = if want == processing_s
                && e.str("cmd") != Some("SETEX")
                && e.str("cmd") != Some("EVALSHA:confirm")
            {
                "processing record"
            } else {
                "completed record"
            };
            bad(
                i,
                e,
                format!("{what} written with a TTL of {written:?} s, not {want} s"),
            );
        }
    }
    for (key, value, expire_at_ms) in input.redis.live_keys(input.redis_now_us) {
        let completed = matches!(
            idempotency::record::parse_record(&value),
            idempotency::record::RecordState::Completed
        );
        if completed && expire_at_ms.is_none() && !key.ends_with("__fence__") {
            out.push(Violation {
                kind: "ttl_lifecycle",
                severity: Severity::Correctness,
                event_id: String::new(),
                detail: format!("completed record {key} has no expiry"),
                first_event: None,
            });
        }
    }
    out
}
