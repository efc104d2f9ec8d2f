//! `ttl_lifecycle`: from the Redis node's own history, every processing record is written with
//! the processing TTL and every completed record with its event type's TTL from the config
//! table; at the end, no completed record lacks an expiry. With `ttl_probe_ms`, the PTTL that
//! Redis shows over time must follow what was written: a key written at Redis time `c` with TTL
//! `t` shows `c + t - now` while it lives and is gone once that time has passed. (When the records then expire is the
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
    let processing_s = input.params.processing_ttl_s;
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
    out.extend(probes(input));
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

/// Where a key's expiry stands after a write, by the Redis node's clock (ms): `Some(at)`, or
/// `None` when it was deleted, or is unknown (written without TTL, lost in a crash).
fn expiry_after(e: &Event) -> Option<Option<i64>> {
    let clock_ms = e.fields.get("clock_us")?.as_i64()? / 1000;
    let reply = e.str("reply")?;
    let at = |ms: u64| Some(Some(clock_ms + ms as i64));
    match e.str("cmd")? {
        "SET" if reply == "OK" => {
            let args = e.fields.get("args")?.as_array()?;
            match (
                args.get(args.len().checked_sub(2)?)?.as_str(),
                args.last()?.as_u64(),
            ) {
                (Some("EX"), Some(s)) => at(s * 1000),
                (Some("PX"), Some(ms)) => at(ms),
                _ => Some(None),
            }
        }
        "SETEX" if reply == "OK" => at(arg_u64(e, 0)? * 1000),
        "DEL" if reply != "0" && !reply.starts_with("error") => Some(None),
        "PEXPIRE" if reply == "1" => at(arg_u64(e, 0)?),
        "EVALSHA:acquire" if reply.starts_with("[\"acquired\"") => at(arg_u64(e, 1)?),
        "EVALSHA:renew" if reply == "1" => at(arg_u64(e, 1)?),
        "EVALSHA:confirm" if reply == "1" || reply == "2" => at(arg_u64(e, 2)? * 1000),
        "EVALSHA:release" if reply == "1" => Some(None),
        _ => None,
    }
}

/// The PTTL probes against the writes before them.
fn probes(input: &Input<'_>) -> Vec<Violation> {
    let mut expiry: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, e) in input.trace.iter().enumerate() {
        match e.kind {
            "redis" => {
                if let (Some(key), Some(after)) = (e.str("key"), expiry_after(e)) {
                    match after {
                        Some(at) => expiry.insert(key.to_owned(), at),
                        None => expiry.remove(key),
                    };
                }
            }
            // A crash may lose writes: what Redis holds is unknown until written again.
            "fault" if e.str("node") == Some("redis") && e.str("fault") == Some("crash") => expiry.clear(),
            "pttl_probe" => {
                let now_ms = e.fields.get("clock_us").and_then(|c| c.as_i64()).unwrap_or(0) / 1000;
                let shown = e.fields.get("keys").and_then(|k| k.as_object());
                for (key, at) in &expiry {
                    let pttl = shown.and_then(|m| m.get(key)).and_then(|v| v.as_i64());
                    let problem = match pttl {
                        Some(p) if now_ms > *at => {
                            Some(format!("still there (PTTL {p} ms) after it should have expired"))
                        }
                        Some(p) if (p - (at - now_ms)).abs() > 1 => Some(format!(
                            "shows PTTL {p} ms where its write leaves {} ms",
                            at - now_ms
                        )),
                        None if now_ms < *at => {
                            Some(format!("is gone {} ms before its TTL ran out", at - now_ms))
                        }
                        _ => None,
                    };
                    if let Some(problem) = problem {
                        out.push(Violation {
                            kind: "ttl_lifecycle",
                            severity: Severity::Correctness,
                            event_id: key.rsplit(':').next().unwrap_or("").chars().take(8).collect(),
                            detail: format!("{key} {problem}"),
                            first_event: Some(i),
                        });
                    }
                }
                expiry.retain(|_, at| *at >= now_ms);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Params;
    use crate::fields;

    const KEY: &str = "p:s:huleedu_essay_spellcheck_requested_v1:abcdef12";

    fn write(clock_ms: i64) -> Event {
        Event {
            t_us: clock_ms as u64 * 1000,
            node: "redis".into(),
            kind: "redis",
            fields: fields! {"cmd" => "SETEX", "key" => KEY, "args" => vec![serde_json::Value::from(3600u64), "{}".into()],
            "reply" => "OK", "clock_us" => clock_ms * 1000},
        }
    }

    fn probe(clock_ms: i64, pttl: Option<i64>) -> Event {
        let mut keys = serde_json::Map::new();
        if let Some(p) = pttl {
            keys.insert(KEY.into(), p.into());
        }
        Event {
            t_us: clock_ms as u64 * 1000,
            node: "redis".into(),
            kind: "pttl_probe",
            fields: fields! {"clock_us" => clock_ms * 1000, "keys" => serde_json::Value::Object(keys)},
        }
    }

    fn judge(trace: &[Event]) -> Vec<Violation> {
        crate::check::judge_history(trace, &Params::default(), check)
    }

    #[test]
    fn a_ttl_that_counts_down_and_then_expires_passes() {
        assert!(judge(&[
            write(0),
            probe(1_000_000, Some(2_600_000)),
            probe(3_700_000, None)
        ])
        .is_empty());
    }

    #[test]
    fn a_wrong_pttl_a_key_that_outlives_its_ttl_and_one_gone_early_are_reported() {
        let wrong = judge(&[write(0), probe(1_000_000, Some(2_700_000))]);
        assert!(
            wrong[0]
                .detail
                .contains("shows PTTL 2700000 ms where its write leaves 2600000 ms"),
            "{wrong:?}"
        );
        let late = judge(&[write(0), probe(3_700_000, Some(5))]);
        assert!(
            late[0].detail.contains("after it should have expired"),
            "{late:?}"
        );
        let early = judge(&[write(0), probe(1_000_000, None)]);
        assert!(
            early[0].detail.contains("gone 2600000 ms before its TTL ran out"),
            "{early:?}"
        );
        let wrong_ttl = judge(&[Event {
            fields: fields! {"cmd" => "SETEX", "key" => KEY, "args" => vec![serde_json::Value::from(60u64), "{}".into()],
            "reply" => "OK", "clock_us" => 0},
            ..write(0)
        }]);
        assert!(wrong_ttl[0].detail.contains("not 3600 s"), "{wrong_ttl:?}");
    }
}
