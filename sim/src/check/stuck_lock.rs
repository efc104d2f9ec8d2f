//! `stuck_lock`: at quiescence, a processing record in Redis with no expiry, or with more time
//! to live than the lock's TTL: a lock that nothing will release in time. When the Redis
//! node's clock was moved during the run, a record written while the clock ran ahead
//! legitimately lives longer after the correction (Redis keeps absolute expiry times): that is
//! a note naming the cause, not a violation.

use super::{Input, Severity, Violation};
use crate::fault::Fault;
use crate::net::topology::NodeName;
use crate::trace::Typed;
use idempotency::record::RecordState;

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let ttl_ms = input.params.processing_ttl_s as i64 * 1000;
    let now_ms = input.redis_now_us / 1000;
    let redis_clock_moved = input.trace.iter().any(|e| match e.typed() {
        Typed::Fault {
            fault: Fault::Clock { node, .. },
            ..
        } => *node == Some(NodeName::Redis),
        Typed::Heal { heal, node, .. } => heal == "clock" && *node == Some(NodeName::Redis),
        _ => false,
    });
    input
        .records
        .iter()
        .filter(|(_, r)| matches!(r.state, RecordState::Processing { .. }))
        .filter_map(|(key, r)| {
            let (problem, severity) = match r.expire_at_ms {
                None => ("has no expiry".to_owned(), Severity::Correctness),
                Some(at) if at - now_ms > ttl_ms => {
                    let mut why = format!("expires in {} ms, beyond the lock's {ttl_ms} ms", at - now_ms);
                    if redis_clock_moved {
                        why.push_str(" (the Redis clock was moved back after it was written)");
                    }
                    (
                        why,
                        if redis_clock_moved {
                            Severity::Note
                        } else {
                            Severity::Correctness
                        },
                    )
                }
                Some(_) => return None,
            };
            Some(Violation {
                kind: "stuck_lock",
                severity,
                event_id: key.rsplit(':').next().unwrap_or("").chars().take(8).collect(),
                detail: format!("processing record {key} {problem}"),
                first_event: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Params;
    use crate::model::db::{DbMode, DbModel};
    use crate::model::redis::RedisModel;
    use crate::trace::Event;
    use idempotency::store::{Command, Expiry, SetCondition};

    const NOW_US: i64 = 1_764_315_200_000_000;

    fn judge(records: &[(&str, &[u8], Option<u64>)], trace: &[Event]) -> Vec<Violation> {
        let mut redis = RedisModel::new();
        for (key, value, ttl_ms) in records {
            let set = Command::Set {
                key: key.to_string(),
                value: value.to_vec(),
                condition: SetCondition::Always,
                expiry: ttl_ms.map(Expiry::Px),
            };
            redis.exec(&set, NOW_US).unwrap();
        }
        let (db, config) = (DbModel::new(DbMode::Unique), Params::default());
        check(&Input {
            trace,
            db: &db,
            records: &crate::check::final_records(&redis, NOW_US),
            redis_now_us: NOW_US,
            params: &config,
            produced: &[],
            complete: true,
            kafka: &crate::check::kafka::check(trace),
        })
    }

    #[test]
    fn a_processing_record_without_expiry_or_beyond_the_lock_ttl_fires() {
        let processing: &[u8] = br#"{"status": "processing", "started_at": 1.0}"#;
        let completed: &[u8] = br#"{"status": "completed"}"#;
        let v = judge(
            &[
                ("p:s:t:aaaaaaaa", processing, None),
                ("p:s:t:bbbbbbbb", processing, Some(400_000)),
                ("p:s:t:cccccccc", processing, Some(300_000)),
                ("p:s:t:dddddddd", completed, None),
            ],
            &[],
        );
        let got: Vec<(&str, Severity, &str)> = v
            .iter()
            .map(|v| (v.kind, v.severity, v.event_id.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stuck_lock", Severity::Correctness, "aaaaaaaa"),
                ("stuck_lock", Severity::Correctness, "bbbbbbbb")
            ]
        );
        assert!(
            v[0].detail.contains("has no expiry") && v[1].detail.contains("beyond the lock's"),
            "{v:?}"
        );
    }

    #[test]
    fn a_long_ttl_after_the_redis_clock_moved_back_is_a_note() {
        let moved = [Typed::Heal {
            heal: "clock".into(),
            node: Some(NodeName::Redis),
            peer: None,
        }
        .event(0, "nemesis")];
        let processing: &[u8] = br#"{"status": "processing"}"#;
        let v = judge(&[("p:s:t:bbbbbbbb", processing, Some(400_000))], &moved);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].severity, Severity::Note, "{v:?}");
        assert!(v[0].detail.contains("clock was moved back"));
    }
}
