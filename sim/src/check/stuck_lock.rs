//! `stuck_lock`: at quiescence, a processing record in Redis with no expiry, or with more time
//! to live than the lock's TTL: a lock that nothing will release in time. When the Redis
//! node's clock was moved during the run, a record written while the clock ran ahead
//! legitimately lives longer after the correction (Redis keeps absolute expiry times): that is
//! a note naming the cause, not a violation.

use super::{Input, Severity, Violation};
use idempotency::record::{parse_record, RecordState};

/// The violations in `input`.
pub fn check(input: &Input<'_>) -> Vec<Violation> {
    let ttl_ms = input.config.processing_ttl_s as i64 * 1000;
    let now_ms = input.redis_now_us / 1000;
    let redis_clock_moved = input.trace.iter().any(|e| {
        e.str("node") == Some("redis") && (e.str("fault") == Some("clock") || e.str("heal") == Some("clock"))
    });
    input
        .redis
        .live_keys(input.redis_now_us)
        .into_iter()
        .filter(|(_, value, _)| matches!(parse_record(value), RecordState::Processing { .. }))
        .filter_map(|(key, _, expire_at_ms)| {
            let (problem, severity) = match expire_at_ms {
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
