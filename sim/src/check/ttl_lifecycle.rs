//! `ttl_lifecycle`: from the Redis node's own history, every processing record is written with
//! the processing TTL and every completed record with its event type's TTL from the config
//! table; at the end, no completed record lacks an expiry. With `ttl_probe_ms`, the PTTL that
//! Redis shows over time must follow what was written: a key written at Redis time `c` with TTL
//! `t` shows `c + t - now` while it lives and is gone once that time has passed. (When the records then expire is the
//! Redis model's business, held to real Redis by the differential test; the remaining TTL at
//! the end is not judged, since a corrected Redis clock legitimately moves it.)

use super::{Input, Severity, Violation};
use crate::fault::Fault;
use crate::net::topology::NodeName;
use crate::trace::Typed;
use serde_json::Value;
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

fn arg_u64(args: &[Value], i: usize) -> Option<u64> {
    args.get(i)?.as_u64()
}

fn arg_str(args: &[Value], i: usize) -> Option<&str> {
    args.get(i)?.as_str()
}

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let (table, default_s) = ttl_by_key_type();
    let ttl_for = |key: &str| table.get(key_type(key)).copied().unwrap_or(default_s);
    let processing_s = input.params.processing_ttl_s;
    let mut out = Vec::new();
    let mut bad = |i: usize, key: &str, detail: String| {
        out.push(Violation {
            kind: "ttl_lifecycle",
            severity: Severity::Correctness,
            event_id: key.rsplit(':').next().unwrap_or("").chars().take(8).collect(),
            detail,
            first_event: Some(i),
        })
    };
    for (i, e) in input.trace.iter().enumerate() {
        let Typed::Redis {
            cmd,
            key,
            args,
            reply,
            ..
        } = e.typed()
        else {
            continue;
        };
        // Read only for a SET: the record is a few hundred bytes, searched for every command
        // otherwise.
        let processing = || arg_str(args, 0).is_some_and(|v| v.contains("\"processing\""));
        let (written, want): (Option<u64>, u64) = match cmd.as_str() {
            // v2's lock: SET key <processing> NX EX <ttl>.
            "SET" if reply == "OK" && processing() => (arg_u64(args, 3), processing_s),
            "SETEX" if reply == "OK" => (arg_u64(args, 0), ttl_for(key)),
            "EVALSHA:acquire" if reply.starts_with("[\"acquired\"") => {
                (arg_u64(args, 1).map(|ms| ms / 1000), processing_s)
            }
            "EVALSHA:confirm" if reply == "1" || reply == "2" => (arg_u64(args, 2), ttl_for(key)),
            _ => continue,
        };
        if written != Some(want) {
            let what = if want == processing_s && cmd != "SETEX" && cmd != "EVALSHA:confirm" {
                "processing record"
            } else {
                "completed record"
            };
            bad(
                i,
                key,
                format!("{what} written with a TTL of {written:?} s, not {want} s"),
            );
        }
    }
    out.extend(probes(input));
    for (key, r) in input.records {
        let completed = r.state == idempotency::record::RecordState::Completed;
        if completed && r.expire_at_ms.is_none() && !key.ends_with("__fence__") {
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
fn expiry_after(cmd: &str, args: &[Value], reply: &str, clock_us: i64) -> Option<Option<i64>> {
    let clock_ms = clock_us / 1000;
    let at = |ms: u64| Some(Some(clock_ms + ms as i64));
    match cmd {
        "SET" if reply == "OK" => {
            match (
                args.get(args.len().checked_sub(2)?)?.as_str(),
                args.last()?.as_u64(),
            ) {
                (Some("EX"), Some(s)) => at(s * 1000),
                (Some("PX"), Some(ms)) => at(ms),
                _ => Some(None),
            }
        }
        "SETEX" if reply == "OK" => at(arg_u64(args, 0)? * 1000),
        "DEL" if reply != "0" && !reply.starts_with("error") => Some(None),
        "PEXPIRE" if reply == "1" => at(arg_u64(args, 0)?),
        "EVALSHA:acquire" if reply.starts_with("[\"acquired\"") => at(arg_u64(args, 1)?),
        "EVALSHA:renew" if reply == "1" => at(arg_u64(args, 1)?),
        "EVALSHA:confirm" if reply == "1" || reply == "2" => at(arg_u64(args, 2)? * 1000),
        "EVALSHA:release" if reply == "1" => Some(None),
        _ => None,
    }
}

/// The PTTL probes against the writes before them.
fn probes(input: &Input<'_>) -> Vec<Violation> {
    // Without a probe (`ttl_probe_ms = 0`, the default) there is nothing to hold the writes to:
    // a scan for one costs a fraction of replaying every write's expiry.
    if !input
        .trace
        .iter()
        .any(|e| matches!(e.typed(), Typed::PttlProbe { .. }))
    {
        return Vec::new();
    }
    let mut expiry: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, e) in input.trace.iter().enumerate() {
        match e.typed() {
            Typed::Redis {
                cmd,
                key,
                args,
                reply,
                clock_us,
                ..
            } => {
                if let Some(after) = expiry_after(cmd, args, reply, *clock_us) {
                    match after {
                        Some(at) => expiry.insert(key.clone(), at),
                        None => expiry.remove(key),
                    };
                }
            }
            // A crash may lose writes: what Redis holds is unknown until written again.
            Typed::Fault {
                fault: Fault::Crash {
                    node: Some(NodeName::Redis),
                },
                ..
            } => expiry.clear(),
            Typed::PttlProbe { clock_us, keys } => {
                let now_ms = clock_us / 1000;
                for (key, at) in &expiry {
                    let pttl = keys.get(key).copied();
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
    use crate::trace::Event;

    const KEY: &str = "p:s:huleedu_essay_spellcheck_requested_v1:abcdef12";

    /// A SETEX of `KEY` with `ttl_s`, at the Redis clock `clock_ms`.
    fn setex(clock_ms: i64, ttl_s: u64) -> Event {
        Typed::Redis {
            from: "worker-1".into(),
            cmd: "SETEX".into(),
            key: KEY.into(),
            args: vec![Value::from(ttl_s), "{}".into()],
            reply: "OK".into(),
            clock_us: clock_ms * 1000,
            reply_lost: false,
        }
        .event(clock_ms as u64 * 1000, "redis")
    }

    fn write(clock_ms: i64) -> Event {
        setex(clock_ms, 3600)
    }

    fn probe(clock_ms: i64, pttl: Option<i64>) -> Event {
        Typed::PttlProbe {
            clock_us: clock_ms * 1000,
            keys: pttl.map(|p| (KEY.to_owned(), p)).into_iter().collect(),
        }
        .event(clock_ms as u64 * 1000, "redis")
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
        let wrong_ttl = judge(&[setex(0, 60)]);
        assert!(wrong_ttl[0].detail.contains("not 3600 s"), "{wrong_ttl:?}");
    }
}
